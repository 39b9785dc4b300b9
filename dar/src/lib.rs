//! Parses Daml archives (.dar/.dalf) the way Canton does, and builds valid test DARs.
