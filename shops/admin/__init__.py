"""Admin registrations of the shops app; each module registers its own models."""
