"""bkdoctor: diagnose and fix BlueKing 7.1 on Kubernetes deployments."""

__version__ = "0.1.0"
