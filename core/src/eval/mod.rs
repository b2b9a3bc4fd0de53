//! Evaluation metrics.
//!
//! - [`classification`]: per-class precision / recall / F1, macro and micro
//!   averages, accuracy and the confusion matrix (scikit-learn's
//!   `classification_report` and `confusion_matrix`).

pub mod classification;
