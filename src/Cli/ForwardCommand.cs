using System.CommandLine;
using System.Diagnostics;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Cli;

/// <summary><c>taskmerge forward MODEL INPUT.safetensors OUTPUT.safetensors [--device ...] [--batch-size N]</c>.</summary>
internal static class ForwardCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var model = new Argument<string>("MODEL") { Description = "HF model directory (config.json + weights) or a .safetensors file" };
        var input = new Argument<string>("INPUT") { Description = "safetensors with pixel_values [B,3,H,W] (CLIP vision), input_ids [B,T] (CLIP text) or input_ids [B,S] and optional attention_mask (RoBERTa)" };
        var output = new Argument<string>("OUTPUT") { Description = "safetensors file to write (last_hidden_state, pooler_output, image_embeds | text_embeds | logits)" };
        var device = new Option<string>("--device") { Description = "auto | cpu | cuda", DefaultValueFactory = _ => "auto" };
        var batch = new Option<int>("--batch-size") { Description = "examples per forward batch", DefaultValueFactory = _ => 32 };
        var threads = new Option<int>("--num-threads", "-j") { Description = "CPU threads (default: all cores)" };
        var quiet = new Option<bool>("--quiet") { Description = "no progress output" };
        var cmd = new Command("forward", "Run a model's forward pass (CLIP vision or text tower, RoBERTa classifier) on input tensors")
        {
            model, input, output, device, batch, threads, quiet,
        };
        cmd.SetAction(parse =>
        {
            var clock = Stopwatch.StartNew();
            bool q = parse.GetValue(quiet);
            using var backend = BackendFactory.Create(parse.GetValue(device)!, parse.GetValue(threads), out _);
            var summary = ItemProgress.Run(stdout, q, "examples", report =>
                ForwardRunner.Run(parse.GetValue(model)!, parse.GetValue(input)!, parse.GetValue(output)!, backend, parse.GetValue(batch),
                    (done, total) => report("forward", done, total)));
            if (!q)
            {
                double s = clock.Elapsed.TotalSeconds;
                stdout.WriteLine($"{summary.Kind}: {summary.Examples} examples in {s:F2} s ({summary.Examples / Math.Max(s, 1e-9):F1}/s) on {backend.Name} → {parse.GetValue(output)}");
                foreach (var o in summary.Outputs) stdout.WriteLine($"  {o}");
            }
            return 0;
        });
        return cmd;
    }
}
