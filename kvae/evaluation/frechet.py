"""Frechet distances of the reconstructions (REC) and the generated sets
(GEN-1, GEN-2) against the real examples: FD-fmnist on kvae's Fashion-MNIST
classifier for 28x28x1 models, and FID on the papers' Inception graph
(`kvae.inception`), fed as the model's recipe's paper fed it."""

from kvae import features, metrics, recipes, seeds
from kvae.config import RunConfig
from kvae.errors import ConfigError, EvaluationError
from kvae.inception import InceptionUnavailable
from kvae.inception_graph import InceptionGraph

CARD = {"fd_fmnist": "FD-fmnist", "fid": "FID"}


def recipe_protocol(card):
    """The FID protocol of the recipe a model's card names (dai2019 when the
    card has no configuration)."""
    try:
        return recipes.fid_protocol(RunConfig.from_json(card.get("config") or {}))
    except ConfigError:
        return "dai2019"


def prepare(context):
    """Find the FID network before anything is computed: fid="on" without it
    is an EvaluationError at once."""
    options = context.options
    context.fid_network, context.fid_missing = None, None
    if options.fid_protocol is None:
        options.fid_protocol = recipe_protocol(context.model.card or {})
    if options.fid == "off" or not context.images:
        return
    try:
        context.fid_network = InceptionGraph(options.inception, options.fid_protocol)
    except InceptionUnavailable as error:
        if options.fid == "on":
            raise EvaluationError(str(error), argument="fid") from error
        context.fid_missing = str(error)


def distances(extractor, real, fakes, context, label):
    """{name: distance} of each fake set against the real set on
    `extractor`'s features; the real statistics come from
    `features.real_statistics` (cached under the evaluation's context)."""
    progress, cache = context.progress, context.options.statistics_cache
    progress(f"{label}: statistics of {len(real)} real images")
    words = {"dataset": context.dataset, "split": context.options.split, "count": context.count}
    real_statistics, cached = features.real_statistics(extractor, real, words, cache)
    if cached:
        progress(f"{label}: real statistics read from {cache}")
    result = {}
    for name, images in fakes.items():
        progress(f"{label}: features of {len(images)} {name} images")
        fake_statistics = metrics.gaussian_statistics(extractor(images, generated=True))
        result[name] = round(metrics.frechet_distance(*real_statistics, *fake_statistics), 6)
    return result


def run(context):
    """(fd_fmnist and fid, with their protocols; the words of generation and
    of the distances)."""
    options, model = context.options, context.model
    fakes = {"rec": context.reconstructions, **context.generated}
    numbers = {}
    if context.images and context.shape == features.FMNIST_SHAPE:
        extractor = features.FashionMnistFeatures()
        numbers["fd_fmnist"] = {
            **distances(extractor, context.real_float, fakes, context, "FD-fmnist"),
            "protocol": extractor.protocol(context.count),
        }
    if not context.images:
        numbers["fid"] = {"available": False, "reason": "FID is defined for images only"}
    elif options.fid == "off":
        numbers["fid"] = {"available": False, "reason": "fid off"}
    elif context.fid_network is None:
        numbers["fid"] = {"available": False, "reason": context.fid_missing}
    else:
        numbers["fid"] = {
            **distances(context.fid_network, context.real, fakes, context, "FID"),
            "protocol": {
                **context.fid_network.protocol(context.count),
                "real_reference": f"the first {context.count} examples of {context.dataset} "
                f"{options.split}",
            },
        }
    temperature = f"{options.temperature:g}"
    generation = f"GEN-1: stage-1 decoder means at z ~ N(0, {temperature}^2 I); "
    if model.stage2 is not None:
        generation += (
            f"GEN-2: u ~ N(0, {temperature}^2 I) -> stage-2 decoder mean"
            f"{' + gamma_z * eps' if model.latent_noise else ''}"
            f"{' -> scaled to unit average std' if options.normalize_latents else ''}"
            " -> stage-1 decoder mean; "
        )
    words = {
        "generation": generation
        + f"{context.count} examples per set, decoder means, not clipped; generated batch b "
        f"from seed + {seeds.GENERATION_BATCH_STRIDE} (b + 1)",
        "frechet_distances": "rec / gen1 / gen2 against the same real examples; images "
        "clipped to [0, 1]; covariance unbiased (np.cov)",
    }
    return numbers, words
