"""Evaluation jobs over datasets: teacher accuracy and the explanation-faithfulness harness."""
