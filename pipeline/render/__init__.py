"""Drawing, arrays in and files out: matplotlib figures, the map's colours and view, the UMAP page,
confusion matrices and the report's tables. Knows nothing of workdirs."""
