"""drtasks: ship a DeepRacer model from the training bucket to a race, an import, or a car."""

__version__ = "0.1.0"
