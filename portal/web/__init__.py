"""The web layer every capability's views share: rendering, error pages, middleware, templating, loose pages."""
