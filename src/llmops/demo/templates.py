"""The demo shop's Self-Instruct templates: tasks of the six types built from its products and reviews.

Every answer is computed from facts found in the documents (reviews and their ratings, FAQ pairs, product
prices, warranties, return windows and specs), in Chinese or English, with several phrasings each. The demo
(and `llmops data self-instruct --preset`) passes `shop_templates(load_products())` to Self-Instruct.
"""

import random
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from llmops.data.example import Example
from llmops.data.templates import CLOSINGS_EN, Maker, TemplateSet, faq_answer, paragraph_summary
from llmops.demo.shop_facts import Product, ShopFacts, extract_shop_facts

CLOSINGS_ZH = ("希望对您有帮助！", "祝您购物愉快！")


def _zh(rng: random.Random) -> bool:
    return rng.random() < 0.5


def _pick_product(rng: random.Random, facts: ShopFacts) -> Product | None:
    return rng.choice(facts.products) if facts.products else None


def review_sentiment(rng: random.Random, facts: ShopFacts) -> Example | None:
    reviews = [r for r in facts.reviews if r.rating != 3]
    if not reviews:
        return None
    review = rng.choice(reviews)
    good = review.rating >= 4
    if review.zh:
        instruction = rng.choice(["判断这条评论是好评还是差评", "这条用户评价是正面的还是负面的？请回答好评或差评。",
                                  "阅读下面的商品评价，给出情感倾向（好评/差评）"])
        return Example("classification", instruction, review.text, "好评" if good else "差评")
    instruction = rng.choice(["Classify this customer review as positive or negative.",
                              "Is the sentiment of the following review positive or negative?",
                              "Read the review below and label it positive or negative."])
    return Example("classification", instruction, review.text, "positive" if good else "negative")


def review_rating(rng: random.Random, facts: ShopFacts) -> Example | None:
    if not facts.reviews:
        return None
    review = rng.choice(facts.reviews)
    if review.zh:
        return Example("classification", "根据评价内容判断用户打了几星（1-5）", review.text, f"{review.rating}星")
    return Example("classification", "Predict the star rating (1-5) the customer gave in this review.",
                   review.text, f"{review.rating} stars")


def product_category(rng: random.Random, facts: ShopFacts) -> Example | None:
    product = _pick_product(rng, facts)
    if product is None:
        return None
    specs = "; ".join(f"{s.name_en} {s.en()}" for s in product.specs)
    if _zh(rng):
        specs_zh = "；".join(f"{s.name_zh} {s.zh()}" for s in product.specs)
        return Example("classification", "这件商品属于哪个品类？请从数码电子、家居生活、户外运动中选择。",
                       f"{product.name_zh}，{specs_zh}", product.category_zh)
    return Example("classification", "Which category does this product belong to? Answer electronics, home or outdoor.",
                   f"{product.name_en}: {specs}", product.category)


def product_blurb(rng: random.Random, facts: ShopFacts) -> Example | None:
    product = _pick_product(rng, facts)
    if product is None:
        return None
    spec = rng.choice(product.specs) if product.specs else None
    if _zh(rng):
        detail = f"{spec.name_zh}达 {spec.zh()}，" if spec else ""
        instruction = rng.choice([f"为 {product.name_zh} 写一段商品推荐语，包含价格和保修信息。",
                                  f"请给 {product.name_zh} 写一句带价格和售后信息的广告文案"])
        return Example("generation", instruction, "", f"{product.name_zh}（¥{product.price}）{detail}享 "
                       f"{product.warranty_months} 个月保修和 {product.return_days} 天无理由退货，放心入手！")
    detail = f" It offers {spec.en()} of {spec.name_en}." if spec else ""
    instruction = rng.choice([
        f"Write a two-sentence product blurb for the {product.name_en} with price and warranty.",
        f"Draft a short ad for the {product.name} that mentions its price and after-sales terms."])
    return Example("generation", instruction, "", f"The {product.name_en} costs ¥{product.price}.{detail} It comes "
                   f"with a {product.warranty_months}-month warranty and a {product.return_days}-day return window.")


def return_reply(rng: random.Random, facts: ShopFacts) -> Example | None:
    product = _pick_product(rng, facts)
    if product is None:
        return None
    days = rng.randint(1, 40)
    ok = days <= product.return_days
    if _zh(rng):
        verdict = "可以为您办理无理由退货" if ok else "已超过无理由退货期限，如有质量问题可申请保修"
        return Example("generation", f"顾客签收 {product.name} {days} 天后想无理由退货，请写一段客服回复。", "",
                       f"您好，{product.name} 支持 {product.return_days} 天无理由退货，您签收已 {days} 天，{verdict}。")
    verdict = "so we can accept a return without a reason" if ok else (
        "so the return window has passed; a defect is still covered by the warranty")
    return Example("generation", f"A customer wants to return the {product.name} {days} days after delivery. "
                   "Write the support reply.", "",
                   f"The {product.name} has a {product.return_days}-day return window and it has been {days} days, "
                   f"{verdict}.")


def product_summary(rng: random.Random, facts: ShopFacts) -> Example | None:
    product = _pick_product(rng, facts)
    if product is None:
        return None
    if _zh(rng):
        specs = "；".join(f"{s.name_zh} {s.zh()}" for s in product.specs)
        text = (f"{product.name} 是一款{product.name_zh.removeprefix(product.name).strip()}，属于{product.category_zh}"
                f"品类。主要参数：{specs}。本品售价 ¥{product.price}，自签收起保修 {product.warranty_months} 个月，"
                f"未使用可在 {product.return_days} 天内无理由退货。")
        return Example("summarization", rng.choice(["将下面的商品介绍总结为一句话", "用一句话概括这段商品说明"]), text,
                       f"{product.name_zh}：{specs}，¥{product.price}，保修 {product.warranty_months} 个月，"
                       f"{product.return_days} 天无理由退货。")
    specs = "; ".join(f"{s.name_en} {s.en()}" for s in product.specs)
    text = (f"The {product.name_en} is part of our {product.category} range. Key specs: {specs}. It sells for "
            f"¥{product.price}, has a {product.warranty_months}-month warranty from delivery and can be returned "
            f"unused within {product.return_days} days.")
    return Example("summarization", rng.choice(["Summarise this product description in one sentence.",
                                                "Give a one-sentence summary of the text below."]), text,
                   f"The {product.name_en} ({specs}) costs ¥{product.price} with a {product.warranty_months}-month "
                   f"warranty and {product.return_days}-day returns.")


def review_summary(rng: random.Random, facts: ShopFacts) -> Example | None:
    if not facts.reviews:
        return None
    review = rng.choice(facts.reviews)
    first = review.text.replace("。", "。\n").replace(". ", ".\n").splitlines()[0].strip()
    if review.zh:
        return Example("summarization", f"用一句话总结这条关于 {review.product} 的评价（{review.rating} 星）",
                       review.text, f"{review.product} 获 {review.rating} 星：{first}")
    return Example("summarization", f"Summarise this {review.rating}-star review of the {review.product} in one line.",
                   review.text, f"{review.product}, {review.rating}/5: {first}")


def product_fact(rng: random.Random, facts: ShopFacts) -> Example | None:
    product = _pick_product(rng, facts)
    if product is None:
        return None
    zh = _zh(rng)
    kind = rng.randrange(3 + len(product.specs))
    if kind >= 3:
        spec = product.specs[kind - 3]
        if zh:
            return Example("qa", f"{product.name} 的{spec.name_zh}是多少？", "",
                           f"{product.name} 的{spec.name_zh}为 {spec.zh()}。")
        return Example("qa", f"What is the {spec.name_en} of the {product.name}?", "",
                       f"The {product.name} has a {spec.name_en} of {spec.en()}.")
    zh_qa = [(f"{product.name} 多少钱？", f"{product.name} 售价 ¥{product.price}。"),
             (f"{product.name} 的保修期是多久？",
              f"{product.name} 的保修期为 {product.warranty_months} 个月，自签收之日起计算。"),
             (f"{product.name} 支持几天无理由退货？", f"{product.name} 支持 {product.return_days} 天无理由退货。")]
    en_qa = [(f"How much does the {product.name} cost?", f"The {product.name} costs ¥{product.price}."),
             (f"How long is the warranty on the {product.name}?",
              f"The {product.name} has a {product.warranty_months}-month warranty from the delivery date."),
             (f"How many days do I have to return the {product.name}?",
              f"The {product.name} can be returned within {product.return_days} days of delivery.")]
    question, answer = (zh_qa if zh else en_qa)[kind]
    return Example("qa", question, "", answer)


def translate_fact(rng: random.Random, facts: ShopFacts) -> Example | None:
    product = _pick_product(rng, facts)
    if product is None:
        return None
    pairs = [(f"{product.name} 售价 ¥{product.price}。", f"The {product.name} costs ¥{product.price}."),
             (f"{product.name} 提供 {product.warranty_months} 个月保修，自签收之日起计算。",
              f"The {product.name} has a {product.warranty_months}-month warranty from delivery."),
             (f"{product.name} 支持 {product.return_days} 天无理由退货。",
              f"The {product.name} can be returned within {product.return_days} days for any reason.")]
    zh_text, en_text = rng.choice(pairs)
    if _zh(rng):
        return Example("rewrite", rng.choice(["将下面的英文翻译成中文", "把这句话译成中文"]), en_text, zh_text)
    return Example("rewrite", rng.choice(["Translate into English.", "Translate this sentence into English."]),
                   zh_text, en_text)


def polite_reply(rng: random.Random, facts: ShopFacts) -> Example | None:
    product = _pick_product(rng, facts)
    if product is None:
        return None
    if _zh(rng):
        return Example("rewrite", "把下面这句客服回复改写得更礼貌、更专业",
                       f"{product.name} 超过 {product.return_days} 天了，退不了。",
                       f"非常抱歉，{product.name} 的无理由退货期限为 {product.return_days} 天，目前已超过期限；"
                       f"如遇质量问题，您可以在 {product.warranty_months} 个月保修期内申请免费维修。")
    return Example("rewrite", "Rewrite this support reply so it is polite and professional.",
                   f"No refund. {product.name} is past {product.return_days} days.",
                   f"We're sorry, but the {product.return_days}-day return window for the {product.name} has passed. "
                   f"If it is faulty, it is still covered by its {product.warranty_months}-month warranty.")


def order_total(rng: random.Random, facts: ShopFacts) -> Example | None:
    if len(facts.products) < 2:
        return None
    items = [(p, rng.randint(1, 3)) for p in rng.sample(facts.products, rng.randint(2, 3))]
    total = sum(p.price * n for p, n in items)
    if _zh(rng):
        cart = "、".join(f"{n} 件 {p.name}" for p, n in items)
        steps = " + ".join(f"¥{p.price}×{n}" for p, n in items)
        return Example("reasoning", f"购物车里有 {cart}，商品合计多少钱？请写出计算过程。", "", f"{steps} = ¥{total}。")
    cart = ", ".join(f"{n} × {p.name}" for p, n in items)
    steps = " + ".join(f"¥{p.price} × {n}" for p, n in items)
    return Example("reasoning", f"What do {cart} cost in total? Show the calculation.", "", f"{steps} = ¥{total}.")


def price_compare(rng: random.Random, facts: ShopFacts) -> Example | None:
    if len(facts.products) < 2:
        return None
    a, b = rng.sample(facts.products, 2)
    diff = abs(a.price - b.price)
    cheaper = a if a.price <= b.price else b
    if _zh(rng):
        answer = (f"{a.name} ¥{a.price}，{b.name} ¥{b.price}，" +
                  ("两者同价。" if diff == 0 else f"{cheaper.name} 便宜 ¥{diff}。"))
        return Example("reasoning", f"{a.name} 和 {b.name} 哪个更便宜？便宜多少？", "", answer)
    answer = f"The {a.name} costs ¥{a.price} and the {b.name} ¥{b.price}; " + (
        "they cost the same." if diff == 0 else f"the {cheaper.name} is ¥{diff} cheaper.")
    return Example("reasoning", f"Which is cheaper, the {a.name} or the {b.name}, and by how much?", "", answer)


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, day.day)


def warranty_check(rng: random.Random, facts: ShopFacts) -> Example | None:
    product = _pick_product(rng, facts)
    if product is None:
        return None
    delivered = date(2024, rng.randint(1, 12), rng.randint(1, 28))
    broke = delivered + timedelta(days=rng.randint(30, 1200))
    end = _add_months(delivered, product.warranty_months)
    covered = broke <= end
    if _zh(rng):
        verdict = "仍在保修期内，可免费维修" if covered else "已过保修期，需付费维修"
        question = f"{product.name} 于 {delivered:%Y-%m-%d} 签收，{broke:%Y-%m-%d} 出现故障，还在保修期内吗？"
        answer = (f"{product.name} 保修 {product.warranty_months} 个月，到 {end:%Y-%m-%d} 为止；"
                  f"故障日期为 {broke:%Y-%m-%d}，{verdict}。")
        return Example("reasoning", question, "", answer)
    verdict = "it is still covered" if covered else "the warranty has expired"
    return Example("reasoning", f"A {product.name} delivered on {delivered:%Y-%m-%d} fails on {broke:%Y-%m-%d}. "
                   "Is it under warranty?", "", f"The {product.name} has a {product.warranty_months}-month warranty "
                   f"that runs until {end:%Y-%m-%d}; it failed on {broke:%Y-%m-%d}, so {verdict}.")


def _product_named(facts: ShopFacts, name: str) -> Product | None:
    return next((p for p in facts.products if p.name == name), None)


def _sentences(text: str) -> list[str]:
    marked = text.replace("。", "。\n").replace("！", "！\n").replace(". ", ".\n").replace("! ", "!\n")
    return [line.strip() for line in marked.splitlines() if line.strip()]


def review_reply(rng: random.Random, facts: ShopFacts) -> Example | None:
    """A reply to a review: thanks for a good one, apology plus the product's after-sales terms for a bad one."""
    pairs = [(r, p) for r in facts.reviews if r.rating != 3 and (p := _product_named(facts, r.product))]
    if not pairs:
        return None
    review, product = rng.choice(pairs)
    if review.zh:
        answer = (f"感谢您对 {product.name} 的认可，欢迎再次光临。" if review.rating >= 4 else
                  f"非常抱歉 {product.name} 没有让您满意。签收 {product.return_days} 天内未使用可无理由退货，"
                  f"{product.warranty_months} 个月保修期内的质量问题可免费维修。")
        return Example("generation", f"以客服身份回复这条关于 {product.name} 的评价", review.text, answer)
    answer = (f"Thank you for your kind words about the {product.name}; we look forward to serving you again."
              if review.rating >= 4 else
              f"We're sorry the {product.name} let you down. Unused items can be returned within "
              f"{product.return_days} days, and faults are repaired free during the {product.warranty_months}-month "
              "warranty.")
    return Example("generation", f"Write a support reply to this review of the {product.name}.", review.text, answer)


def review_bullets(rng: random.Random, facts: ShopFacts) -> Example | None:
    reviews = [r for r in facts.reviews if len(_sentences(r.text)) >= 2]
    if not reviews:
        return None
    review = rng.choice(reviews)
    bullets = "\n".join(f"- {sentence}" for sentence in _sentences(review.text))
    if review.zh:
        return Example("rewrite", "把这条评价改写成要点列表，每句一条", review.text, bullets)
    return Example("rewrite", "Rewrite this review as a bullet list, one sentence per bullet.", review.text, bullets)


def spec_table(rng: random.Random, facts: ShopFacts) -> Example | None:
    product = _pick_product(rng, facts)
    if product is None or not product.specs:
        return None
    if _zh(rng):
        text = "，".join(f"{s.name_zh}为 {s.zh()}" for s in product.specs)
        table = "| 参数 | 数值 |\n|---|---|\n" + "\n".join(f"| {s.name_zh} | {s.zh()} |" for s in product.specs)
        return Example("rewrite", f"把 {product.name} 的参数说明改写成表格", f"{product.name} 的{text}。", table)
    text = ", ".join(f"its {s.name_en} is {s.en()}" for s in product.specs)
    table = "| Spec | Value |\n|---|---|\n" + "\n".join(f"| {s.name_en} | {s.en()} |" for s in product.specs)
    return Example("rewrite", f"Rewrite the {product.name} specs below as a table.", f"For the {product.name}, {text}.",
                   table)


def return_window(rng: random.Random, facts: ShopFacts) -> Example | None:
    product = _pick_product(rng, facts)
    if product is None:
        return None
    delivered = date(2024, rng.randint(1, 12), rng.randint(1, 28))
    days = rng.randint(1, 40)
    asked = delivered + timedelta(days=days)
    ok = days <= product.return_days
    if _zh(rng):
        verdict = "在期限内，可以无理由退货" if ok else "已超过期限，不能无理由退货"
        question = f"{product.name} 于 {delivered:%Y-%m-%d} 签收，顾客 {asked:%Y-%m-%d} 申请无理由退货，可以吗？"
        answer = f"{product.name} 的无理由退货期限为 {product.return_days} 天，签收至申请共 {days} 天，{verdict}。"
        return Example("reasoning", question, "", answer)
    verdict = "within the window, so the return is accepted" if ok else "past the window, so it cannot be returned"
    return Example("reasoning", f"The {product.name} was delivered on {delivered:%Y-%m-%d}. Can it be returned without "
                   f"a reason on {asked:%Y-%m-%d}?", "", f"The {product.name} has a {product.return_days}-day return "
                   f"window; {days} days have passed, which is {verdict}.")


def shop_paragraph_summary(rng: random.Random, facts: ShopFacts) -> Example | None:
    """Lead sentence of a prose paragraph (only used when the documents have no products or reviews)."""
    return None if facts.products or facts.reviews else paragraph_summary(rng, facts.documents)


def shop_faq_answer(rng: random.Random, facts: ShopFacts) -> Example | None:
    return faq_answer(rng, facts.documents)


MAKERS: dict[str, tuple[Maker[ShopFacts], ...]] = {
    "classification": (review_sentiment, review_rating, product_category),
    "generation": (product_blurb, return_reply, review_reply),
    "summarization": (product_summary, review_summary, shop_paragraph_summary),
    "qa": (shop_faq_answer, product_fact),
    "rewrite": (translate_fact, polite_reply, review_bullets, spec_table),
    "reasoning": (order_total, price_compare, warranty_check, return_window),
}


def shop_templates(products: Sequence[Mapping[str, Any]]) -> TemplateSet[ShopFacts]:
    """The shop's template set over `products` (raw dicts, e.g. the preset's `load_products()`)."""
    return TemplateSet(lambda texts: extract_shop_facts(texts, products), MAKERS, CLOSINGS_EN, CLOSINGS_ZH)
