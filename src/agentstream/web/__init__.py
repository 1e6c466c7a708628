"""The chat page shipped in the package: static HTML, CSS and ES modules, no build step."""
