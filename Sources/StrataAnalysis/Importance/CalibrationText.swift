/// The calibration text `strata analyze` uses when given no file: the opening of Jane
/// Austen's *Pride and Prejudice* (1813, public domain), as in the project's reference data
/// (Debian's `r-cran-janeaustenr`). Its first 2,048 tokens are the first four 512-token windows
/// of the whole novel, the text the transformers reference measured layer importance on.
public enum CalibrationText {
    /// Name recorded in reports.
    public static let prideAndPrejudiceName = "Pride and Prejudice (opening, bundled)"

    /// The first 11,468 characters of the novel, ending at a paragraph break: the start of
    /// the text `strata eval compare` scores by default, so the passage is stored once.
    public static let prideAndPrejudice = String(String.UnicodeScalarView(defaultPerplexityText.unicodeScalars.prefix(11_468)))
}
