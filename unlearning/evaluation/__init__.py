"""What a run is judged by: the papers' metrics (`metrics`), the forgetting measures (`forgetting`), the
statistical verdict (`verdict`) and the audit that trains N unlearned and N retrained models per cell (`audit`).
Importing this package imports nothing (the report reads `verdict` without torch)."""
