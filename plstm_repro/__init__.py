"""Phased LSTM (Neil, Pfeiffer, Liu, NIPS 2016), reproduced."""
__version__ = "0.1.0"
