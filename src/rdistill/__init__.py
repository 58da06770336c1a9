"""rdistill: data-efficient reasoning distillation.

Pick a teacher by how well a student learns from it, curate a small set of reasoning traces,
fine-tune a student on them and measure what it gained and lost.
"""

__version__ = "0.1.0"
