"""The official's desk: officials, review of dossiers, the register of certified copies."""
