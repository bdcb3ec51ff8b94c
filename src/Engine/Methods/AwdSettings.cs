namespace TaskMerge.Engine.Methods;

/// <summary>What one AWD cosine is taken over (<c>granularity</c>).</summary>
public enum AwdGranularity
{
    /// <summary>Every included tensor of a task flattened into one vector; one δ for the model (the paper's formula).</summary>
    Model,
    /// <summary>One δ and one cosine per included tensor.</summary>
    Tensor,
    /// <summary>One cosine per output row of each included tensor, averaged over rows; regulariser Σᵣ‖δᵣ‖ (the authors' code default).</summary>
    Row,
}

/// <summary>How δ is updated (<c>optimizer</c>).</summary>
public enum AwdOptimizer
{
    /// <summary>δ ← δ − lr·∇L.</summary>
    Gd,
    /// <summary>torch.optim.SGD with momentum and L2 weight decay.</summary>
    Sgd,
    /// <summary>torch.optim.Adam (β 0.9/0.999, eps 1e-8) with L2 weight decay.</summary>
    Adam,
}

/// <summary>Optimiser settings of one AWD solve.</summary>
/// <param name="Optimizer">Update rule.</param>
/// <param name="Lr">Learning rate.</param>
/// <param name="Iterations">Number of updates.</param>
/// <param name="Alpha">Weight of the regulariser ‖δ‖₂ (Σᵣ‖δᵣ‖₂ at row granularity).</param>
/// <param name="Momentum">SGD momentum μ.</param>
/// <param name="WeightDecay">L2 weight decay added to the gradient (SGD and Adam, as torch).</param>
internal sealed record AwdSettings(AwdOptimizer Optimizer, double Lr, int Iterations, double Alpha, double Momentum, double WeightDecay);
