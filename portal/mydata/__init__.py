"""What the customer sees about themselves, and rectifies."""
