"""From a cell's scores and maps to numbers: the metrics, their intervals and the input-sensitivity check."""
