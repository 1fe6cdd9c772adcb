"""Charts drawn on the server as SVG: scales, bar and column charts, the day strip; the template draws the shapes."""
