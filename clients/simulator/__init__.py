"""A simulated kiosk: synthetic Vietnamese documents as a scanner or camera would produce them."""
