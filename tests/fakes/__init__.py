"""Local stand-ins for the two APIs tests may fake: the DeepRacer console and the DRoA gateway."""
