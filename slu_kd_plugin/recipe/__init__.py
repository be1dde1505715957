"""What the recipes run: the settings table (``settings``) and its renderings for the
shell (``shell``) and for fairseq-hydra-train (``hydra``)."""
