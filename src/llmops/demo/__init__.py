"""Demo mode: the tiny base model, the bundled preset documents and the simulated users."""
