#!/usr/bin/env python3
"""EASE^R with NumPy, the reference implementation, timed like Tephra's ease_bench.

usage: ease_peer.py FILE.csv [--lambda 500] [--runs 3] [--dtype float64|float32]

Reads a user_id,item_id[,...] CSV with a header, builds the binary users x items
matrix (repeats collapsed) and, per run, times: G = X^T X (sparse product, then
dense), G += lambda*I, P = inv(G), B = -P / diag(P), diag(B) = 0. Threads are set
by the caller (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS). Prints one line per run
with the fit time and the peak resident memory so far.
"""
import argparse
import resource
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

ap = argparse.ArgumentParser()
ap.add_argument("csv")
ap.add_argument("--lambda", dest="lam", type=float, default=500.0)
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
a = ap.parse_args()

df = pd.read_csv(a.csv, usecols=["user_id", "item_id"], dtype={"user_id": str, "item_id": str})
u = df.user_id.astype("category").cat.codes.to_numpy()
i = df.item_id.astype("category").cat.codes.to_numpy()
dtype = np.dtype(a.dtype)
X = sp.csr_matrix((np.ones(len(df), dtype), (u, i)), shape=(u.max() + 1, i.max() + 1))
X.data[:] = 1  # repeats collapsed to 1
print(f"users={X.shape[0]} items={X.shape[1]} nnz={X.nnz} dtype={a.dtype}", flush=True)


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


for run in range(1, a.runs + 1):
    t = time.perf_counter()
    G = (X.T @ X).toarray()
    G[np.diag_indices_from(G)] += a.lam
    P = np.linalg.inv(G)
    B = P / (-np.diag(P))
    B[np.diag_indices_from(B)] = 0
    dt = time.perf_counter() - t
    print(f"ease (numpy {np.__version__} {a.dtype}) run={run} fit_s={dt:.3f} peak_rss_mib={peak_mib()}", flush=True)
    del G, P, B
