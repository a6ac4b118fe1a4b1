"""Training experiments: named groups that training jobs are filed under."""
