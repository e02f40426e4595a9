"""Before training: rank the shelf's models on the user's data (ranking.py, transferability.py) and draw
the data map in the best one's embeddings (data_map.py)."""
