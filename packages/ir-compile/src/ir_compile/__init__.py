"""ir-compile: the IR lowering pass, fusion passes on IR ops and a torch.compile backend."""

__version__ = "0.1.0"
