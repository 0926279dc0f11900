"""Grid search over the privacy budget
===================================

Grid search over the privacy budget with an sklearn pipeline and a fidelity scorer.

Run: python examples/grid_search_privacy.py
"""
import warnings

import pandas as pd
from sklearn.model_selection import GridSearchCV

from nhssynth import DPVAESynthesizer, NonPrivateOperationWarning, TableEncoder, make_synthesis_pipeline
from nhssynth.datasets import load_example
from nhssynth.metrics import get_scorer

df, metadata = load_example(return_metadata=True)
cols = ["age", "sex", "dzclass", "income", "charges", "hospdead", "num.co"]
df, metadata = df[cols].iloc[:3000], metadata.select(cols)

pipe = make_synthesis_pipeline(TableEncoder(metadata=metadata),
                               DPVAESynthesizer(max_epochs=5, random_state=0))
search = GridSearchCV(pipe, {"dpvaesynthesizer__epsilon": [0.5, 2.0, 8.0]},
                      scoring=get_scorer("fidelity"), cv=3)
with warnings.catch_warnings():
    # a standalone TableEncoder reads its mixtures from the data (see docs/privacy.md)
    warnings.simplefilter("ignore", NonPrivateOperationWarning)
    search.fit(df)

print(pd.DataFrame(search.cv_results_)[["param_dpvaesynthesizer__epsilon", "mean_test_score"]])
print("best:", search.best_params_)
assert len(search.cv_results_["mean_test_score"]) == 3
