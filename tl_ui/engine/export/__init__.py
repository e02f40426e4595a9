"""The model folder a user downloads: timm / transformers / sentence-transformers files and the manifest
(folder.py, sentence_export.py), and the model cards (card.py, multilabel_card.py)."""
