"""Independent reference implementations the tests compare against (not part of the package)."""
