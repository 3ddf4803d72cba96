import pytest

from adapters.arithmetic import ExactArithmetic, FaultInjectingArithmetic, InjectedFault


def test_exact_arithmetic_is_exact_and_ordered() -> None:
    assert ExactArithmetic().sum_pairs([(2**62, 2**62), (1, -1)]) == [2**63, 0]


def test_fault_injection_fails_when_the_draw_is_below_the_rate() -> None:
    flaky = FaultInjectingArithmetic(ExactArithmetic(), failure_rate=0.3, draw=lambda: 0.29)
    with pytest.raises(InjectedFault):
        flaky.sum_pairs([(1, 2)])
    lucky = FaultInjectingArithmetic(ExactArithmetic(), failure_rate=0.3, draw=lambda: 0.3)
    assert lucky.sum_pairs([(1, 2)]) == [3]


def test_a_zero_rate_never_fails() -> None:
    never = FaultInjectingArithmetic(ExactArithmetic(), failure_rate=0.0, draw=lambda: 0.0)
    assert never.sum_pairs([(5, 5)]) == [10]
