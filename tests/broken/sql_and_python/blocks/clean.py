"""A Python block."""


def clean_trips(trips):
    return trips
