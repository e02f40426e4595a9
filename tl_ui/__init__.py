"""Transfer Lab: adapt a pretrained model to a small labelled dataset, in the browser."""
__version__ = "0.1.0"
