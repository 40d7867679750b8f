"""Recurrent cells: one LSTM with ablation flags, GRU, MUT1-3, tanh RNN, MGU, and their registry."""

from lstm_variants.cells.base import RecurrentCell
from lstm_variants.cells.gru import GRUCell
from lstm_variants.cells.lstm import LSTMCell
from lstm_variants.cells.mut import MUTCell
from lstm_variants.cells.registry import VARIANTS, UnknownCellError, check_cell, make_cell
from lstm_variants.cells.simple import MGUCell, TanhRNNCell

__all__ = [
    "VARIANTS",
    "GRUCell",
    "LSTMCell",
    "MGUCell",
    "MUTCell",
    "RecurrentCell",
    "TanhRNNCell",
    "UnknownCellError",
    "check_cell",
    "make_cell",
]
