"""Storage ports and their adapters. Domain code imports ports, never drivers."""
