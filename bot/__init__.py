"""Chung Sức: a chatbot for villagers and officials of Vietnam's New Rural Development programme."""

__version__ = "0.1.0"
