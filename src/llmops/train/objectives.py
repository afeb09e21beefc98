"""The KTO objective's class weights, from the balance of desirable and undesirable examples.

The KTO paper (Ethayarajh et al., 2024, section 4 and its "KTO hyperparameters" advice) asks that
λ_D·n_D / (λ_U·n_U) lie in [1, 4/3], λ_D and λ_U being LLaMA-Factory's `kto_chosen_weight` and `kto_rejected_weight`.
"""

RATIO_LOW, RATIO_HIGH = 1.0, 4.0 / 3.0


def kto_weights(desirable: int, undesirable: int) -> tuple[float, float]:
    """(kto_chosen_weight, kto_rejected_weight) for `desirable` and `undesirable` examples: both 1 when
    n_D / n_U already lies in [1, 4/3]; otherwise the side there is too little of is up-weighted to the nearest end
    of that range (λ_D = n_U / n_D when desirable examples are too few, λ_U = 3·n_D / (4·n_U) when undesirable ones
    are), so no weight is ever below 1. With no example of one side there is nothing to balance: both 1."""
    if desirable <= 0 or undesirable <= 0:
        return 1.0, 1.0
    ratio = desirable / undesirable
    if ratio < RATIO_LOW:
        return round(RATIO_LOW / ratio, 4), 1.0
    if ratio > RATIO_HIGH:
        return 1.0, round(ratio / RATIO_HIGH, 4)
    return 1.0, 1.0
