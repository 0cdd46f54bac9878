"""The probe stage (logistic regression and kNN on the labels, C and k tuned by inner CV) and the
baseline stage (majority class, TF-IDF) scored on the same rows; the solver and the metrics are pure."""
