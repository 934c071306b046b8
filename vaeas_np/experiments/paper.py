"""The paper's own numbers ("Improve Variational Autoencoder with Auxiliary Softmax
Multiclassifier"), copied from its Tables 1, 2 and 3, as data.

Each table row is a dict; ``None`` marks a cell the paper leaves empty ("-").
The row order is the paper's.  Table 2 (MNIST) has 13 rows: the paper's MNIST
table has no (alpha = 1, beta = 10) row, while Table 3 (Omniglot) has it (14 rows).
"""

#: the metric columns of Tables 2 and 3, in the paper's order
COLUMNS = ("NLL_test", "KL_test", "AU", "NLL_train", "KL_train", "MI", "MD", "SC")

# Table 1 of the paper: "The number of active units of z, changes with number of
# decoder network layers" (MNIST, plain VAE, Cov_p(x)(E_q[z_d]) >= 0.01).
TABLE1 = {1: 23, 2: 21, 3: 17, 4: 12, 5: 8}


def _rows(text):
    rows = []
    for line in text.strip().splitlines():
        method, a, b, *vals = line.split()
        rows.append({"method": method,
                     "alpha": None if a == "-" else float(a),
                     "beta": None if b == "-" else float(b),
                     **{c: (None if v == "-" else (int(v) if c == "AU" else float(v)))
                        for c, v in zip(COLUMNS, vals)}})
    return rows


# Table 2 of the paper: "Adjust VAE-AS optimization effect by alpha and beta" (MNIST,
# section 5.3).  Columns: method alpha beta NLL_test KL_test AU NLL_train KL_train MI MD SC.
TABLE2 = _rows("""
VAE    -   -   100.99 18.39  8 73.45  18.57 -     -     -
VAE-AS 1.0 1.0  96.32 21.84 11 71.66  21.22 10.78 10.66 0.35
VAE-AS 1.0 0.1 116.61 64.70 36 58.39  65.70 10.86 54.89 0.11
VAE-AS 1.0 0.2 106.92 46.99 25 61.16  45.14 10.87 34.35 0.12
VAE-AS 1.0 0.5  96.63 29.52 18 65.64  29.40 10.83 18.71 0.22
VAE-AS 1.0 2.0 101.34 15.68  7 81.61  15.87 10.58  5.78 0.82
VAE-AS 1.0 5.0 141.38  5.35  2 145.04  5.56  3.34  2.27 7.62
VAE-AS 0.1 1.0  97.22 21.53 11 72.13  21.22 10.80 10.63 0.31
VAE-AS 0.2 1.0  97.51 21.23 10 71.84  20.92 10.81 10.32 0.31
VAE-AS 0.5 1.0  98.23 21.57 10 72.23  20.91 10.80 10.32 0.33
VAE-AS 2.0 1.0  96.56 21.13 11 71.85  20.99 10.75 10.48 0.41
VAE-AS 5.0 1.0  97.33 20.38 10 75.94  19.79 10.44  9.80 0.93
VAE-AS 10.0 1.0 104.69 21.84 10 93.05 20.28  9.00 12.60 3.23
""")

# Table 3 of the paper: "Results of Omniglot Dataset" (appendix 7.3; the paper's header
# spells NLL as "NNL").  Same columns as Table 2.
TABLE3 = _rows("""
VAE    -   -   147.21  9.33  3 133.70  9.25 -     -     -
VAE-AS 1.0 0.1 158.54 81.14 40  61.31 82.70 10.10 72.61 0.00
VAE-AS 1.0 0.2 144.05 61.90 34  63.96 61.59 10.10 51.50 0.01
VAE-AS 1.0 0.5 133.44 37.22 21  70.27 37.59 10.09 27.52 0.02
VAE-AS 1.0 1.0 140.08 22.81 10  83.91 22.56 10.07 12.53 0.07
VAE-AS 1.0 2.0 146.47  8.38  3 135.03  8.56  6.17  2.56 4.10
VAE-AS 1.0 5.0 161.17  2.35  1 161.56  2.66  1.83  0.84 8.28
VAE-AS 1.0 10.0 174.49 1.46  0 177.22  2.09  0.59  1.55 9.56
VAE-AS 0.1 1.0 136.82 23.23 11  82.03 23.45 10.07 13.41 0.06
VAE-AS 0.2 1.0 140.38 21.17  9  86.22 21.49 10.07 11.45 0.06
VAE-AS 0.5 1.0 137.52 21.57 10  84.68 22.13 10.07 12.10 0.07
VAE-AS 2.0 1.0 140.60 21.16  9  86.02 21.27 10.06 11.25 0.08
VAE-AS 5.0 1.0 133.10 20.97 10  86.42 21.31 10.04 11.35 0.13
VAE-AS 10.0 1.0 175.63 41.15 7 145.96 39.76  4.22 36.84 7.18
""")

#: the settings the paper states (section 5.2 for Figures 2-3, section 5.3 for the tables)
SETTINGS = {
    "tables": {"encoder_layers": (500, 500), "decoder_layers": (500,) * 5,
               "classifier_layers": (500, 500), "latent_dim": 40, "batch_size": 128,
               "epochs": 300, "nll_samples": 4096},
    "fig2": {"encoder_layers": (500, 500), "decoder_layers": (500,) * 3,
             "classifier_layers": (500, 500), "latent_dim": 40, "batch_size": 100,
             "epochs": 120, "mc_samples": (55000, 10000, 5000, 1000, 500, 100),
             "n_labels": (55000, 10000)},
}

#: figure captions of the paper, for the headers of our outputs
CAPTIONS = {
    "fig2": "Figure 2: Estimate mutual information and marginal KL-Divergence.",
    "fig3": "Figure 3: Estimate KL-Divergence (MI + MD against the mean KL).",
    "fig4": "Figure 4: reconstructions of MNIST test and train images at alpha = 0.2 and 5.0.",
    "fig5": "Figure 5: reconstructions of Omniglot test and train images at alpha = 0.2 and 5.0.",
    "noise": "Section 2.2: a VAE fed pure-noise images; KL 'will soon tend to 0'.",
    "table1": "Table 1: active units of z against the number of decoder layers (MNIST).",
    "table2": "Table 2: Adjust VAE-AS optimization effect by alpha and beta (MNIST).",
    "table3": "Table 3: Results of Omniglot Dataset.",
}
