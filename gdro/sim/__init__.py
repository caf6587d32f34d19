"""A fast numpy learning simulator for studying the curriculum controllers without a model."""

from gdro.sim.simulator import LearningSimulator, SimulatorConfig, group_abs_advantage_sum

__all__ = ["LearningSimulator", "SimulatorConfig", "group_abs_advantage_sum"]
