"""Who chooses and who reports (roles.py), and the single-label numbers measured on the report examples:
scikit-learn scores and predictions.csv (evaluate.py), intervals, calibration, prediction sets (report.py)."""
