"""Centralized references the distributed run is checked against."""
