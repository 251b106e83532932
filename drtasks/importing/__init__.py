"""Importing an uploaded model into a DeepRacer service (the AWS console, DeepRacer on AWS)."""
