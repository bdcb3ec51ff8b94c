using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Eval;

/// <summary>
/// CLIP's tokenizer (OpenAI <c>simple_tokenizer.py</c>, as open_clip and task-vectors use it) from a
/// Hugging Face <c>vocab.json</c> + <c>merges.txt</c> pair or a <c>tokenizer.json</c>. Clean-up without
/// ftfy: HTML entities decoded twice, whitespace runs → one space, trimmed, lower-cased; pieces from
/// CLIP's word regex (contractions, letter runs, single digits, other non-space runs; the two special
/// tokens written in the text map to their ids); each piece's UTF-8 bytes through GPT-2's byte
/// alphabet and Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> with the <c>&lt;/w&gt;</c>
/// end-of-word suffix. Framing <c>&lt;|startoftext|&gt; … &lt;|endoftext|&gt;</c>, truncated to the
/// context length with the last id forced to <c>&lt;|endoftext|&gt;</c>, padded with 0 (open_clip).
/// .NET's regex sees UTF-16 code units, so letters outside the BMP do not match <c>\p{L}</c> (they
/// fall into the "other" class, as symbols do); .NET's HTML decoding needs the entity's semicolon; there
/// is no NFC step (ftfy and HF's fast tokenizer have one), so decomposed accents tokenize differently.
/// </summary>
public sealed partial class ClipTokenizer
{
    /// <summary>CLIP's context length.</summary>
    public const int ContextLength = 77;

    private const string StartOfText = "<|startoftext|>";
    private const string EndOfText = "<|endoftext|>";

    private readonly BpeTokenizer _bpe;

    private ClipTokenizer(BpeTokenizer bpe, int bos, int eos, string identity)
    {
        (_bpe, BosId, EosId, Identity) = (bpe, bos, eos, identity);
    }

    /// <summary>Hex SHA-256 of the vocabulary and merges the tokenizer was built from (cache keys).</summary>
    public string Identity { get; }

    /// <summary>Id of <c>&lt;|startoftext|&gt;</c> (49406 in OpenAI's vocabulary).</summary>
    public int BosId { get; }

    /// <summary>Id of <c>&lt;|endoftext|&gt;</c> (49407).</summary>
    public int EosId { get; }

    [GeneratedRegex(@"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+", RegexOptions.IgnoreCase)]
    private static partial Regex WordPattern();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    /// <summary>
    /// Loads the tokenizer from <paramref name="directory"/>: <c>vocab.json</c> + <c>merges.txt</c>
    /// when both exist, else <c>tokenizer.json</c> (its BPE <c>model.vocab</c> and <c>model.merges</c>).
    /// </summary>
    public static ClipTokenizer Load(string directory)
    {
        string vocab = Path.Combine(directory, "vocab.json"), merges = Path.Combine(directory, "merges.txt"), fast = Path.Combine(directory, "tokenizer.json");
        if (File.Exists(vocab) && File.Exists(merges))
            return Create(ReadAllBytes(vocab, P(vocab)), ReadAllBytes(merges, P(merges)), P(directory));
        if (File.Exists(fast)) return FromTokenizerJson(fast);
        throw new BadInputException($"{P(directory)}: no CLIP tokenizer files (vocab.json and merges.txt, or tokenizer.json)");
    }

    private static ClipTokenizer FromTokenizerJson(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(ReadAllBytes(path, P(path)));
            if (!doc.RootElement.TryGetProperty("model", out var model) || !model.TryGetProperty("vocab", out var v) || v.ValueKind != JsonValueKind.Object
                || !model.TryGetProperty("merges", out var m) || m.ValueKind != JsonValueKind.Array)
                throw new BadInputException($"{P(path)}: not a BPE tokenizer.json (model.vocab and model.merges missing)");
            var merges = new StringBuilder("#version: 0.2\n");
            foreach (var e in m.EnumerateArray())
                merges.Append(e.ValueKind == JsonValueKind.Array ? string.Join(' ', e.EnumerateArray().Select(x => x.GetString())) : e.GetString()).Append('\n');
            return Create(Encoding.UTF8.GetBytes(v.GetRawText()), Encoding.UTF8.GetBytes(merges.ToString()), P(path));
        }
        catch (JsonException e)
        {
            throw new BadInputException($"{P(path)}: not valid JSON: {OneLine(e.Message)}");
        }
    }

    private static ClipTokenizer Create(byte[] vocabJson, byte[] mergesTxt, string origin)
    {
        Dictionary<string, int> ids;
        try
        {
            ids = JsonSerializer.Deserialize<Dictionary<string, int>>(vocabJson) ?? throw new BadInputException($"{origin}: empty vocabulary");
        }
        catch (JsonException e)
        {
            throw new BadInputException($"{origin}: vocabulary is not a token → id JSON object: {OneLine(e.Message)}");
        }
        foreach (var special in new[] { StartOfText, EndOfText })
            if (!ids.ContainsKey(special)) throw new BadInputException($"{origin}: vocabulary has no {special} token, so it is not CLIP's");
        try
        {
            var bpe = BpeTokenizer.Create(new MemoryStream(vocabJson), new MemoryStream(mergesTxt), preTokenizer: null, normalizer: null,
                specialTokens: null, unknownToken: null, continuingSubwordPrefix: null, endOfWordSuffix: "</w>", fuseUnknownTokens: false);
            using var h = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
            h.AppendData(vocabJson);
            h.AppendData("\n--merges--\n"u8);
            h.AppendData(mergesTxt);
            return new ClipTokenizer(bpe, ids[StartOfText], ids[EndOfText], Convert.ToHexStringLower(h.GetHashAndReset()));
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or IOException or JsonException)
        {
            throw new BadInputException($"{origin}: cannot build the BPE tokenizer: {OneLine(e.Message)}", e);
        }
    }

    /// <summary>CLIP's clean-up without ftfy: HTML entities decoded twice, whitespace runs to one space, trimmed, lower-cased.</summary>
    public static string Clean(string text)
    {
        string unescaped = WebUtility.HtmlDecode(WebUtility.HtmlDecode(text)).Trim();
        return Whitespace().Replace(unescaped, " ").Trim().ToLowerInvariant();
    }

    /// <summary>The BPE ids of <paramref name="text"/> without framing (simple_tokenizer's <c>encode</c>).</summary>
    public int[] EncodeContent(string text)
    {
        var ids = new List<int>();
        foreach (Match piece in WordPattern().Matches(Clean(text)))
        {
            if (piece.Value == StartOfText) ids.Add(BosId);
            else if (piece.Value == EndOfText) ids.Add(EosId);
            else ids.AddRange(_bpe.EncodeToIds(ByteLevelAlphabet.Encode(piece.Value), considerPreTokenization: false, considerNormalization: false));
        }
        return [.. ids];
    }

    /// <summary>
    /// <c>[BOS] + ids + [EOS]</c>, cut to <paramref name="contextLength"/> with the last id set to EOS
    /// when longer, without padding.
    /// </summary>
    public int[] EncodeFramed(string text, int contextLength = ContextLength)
    {
        if (contextLength < 2) throw new ArgumentOutOfRangeException(nameof(contextLength), contextLength, "room for BOS and EOS is needed");
        int[] content = EncodeContent(text);
        int keep = Math.Min(content.Length, contextLength - 2);
        return [BosId, .. content.AsSpan(0, keep), EosId];
    }

    /// <summary>
    /// The ids of each text as open_clip's <c>tokenize</c> gives them: framed, truncated, padded with 0
    /// to <paramref name="contextLength"/>; row-major [texts.Count, contextLength].
    /// </summary>
    public int[] Encode(IReadOnlyList<string> texts, int contextLength = ContextLength)
    {
        var ids = new int[texts.Count * contextLength];
        for (int i = 0; i < texts.Count; i++) EncodeFramed(texts[i], contextLength).CopyTo(ids, i * contextLength);
        return ids;
    }
}
