"""localvoice: an offline server for the Azure AI Voice Live realtime protocol."""

__version__ = "0.1.0"
