"""The customer self-service privacy portal: see ARCHITECTURE.md for the layout."""
