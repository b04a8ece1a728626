"""A run: its configuration and options, the plan, the grid of cells and the folder they are written to."""
