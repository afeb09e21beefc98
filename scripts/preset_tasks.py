"""Self-Instruct seed tasks (spec 4.2.3: six task types), every answer derived from the shop's facts."""

import datetime as dt
from collections.abc import Callable
from typing import Any

from preset_text import add_months, en_date, random_date, zh_date
from preset_vocab import (
    CATEGORIES,
    EXPRESS_FEE,
    FREE_SHIPPING_OVER,
    REPAIR_LABOUR_FEE,
    RETURN_SHIPPING_FEE,
    SHIPPING_FEE,
    TYPES,
    Rng,
)

Task = tuple[str, str, str]  # instruction, input, output
Maker = Callable[[int, list[dict[str, Any]], list[dict[str, Any]], Rng], Task]
KINDS = {kind["key"]: kind for kind in TYPES}
PER_TYPE = 8
INTENTS = [("物流", ["我的快递三天了还没到，能帮我查一下吗？", "请问今天下单什么时候能发货？",
                    "包裹显示已签收但我没收到。"]),
           ("退货", ["东西不想要了，怎么退？", "退货的运费谁出？", "退款什么时候能到账？"]),
           ("保修", ["用了半年坏了，能免费修吗？", "过了保修期还能修吗，多少钱？", "维修一般要多久？"]),
           ("发票", ["可以开增值税专用发票吗？", "电子发票发到哪里了？", "发票抬头写错了怎么改？"])]


def _classification(i: int, products: list[dict[str, Any]], reviews: list[dict[str, Any]], rng: Rng) -> Task:
    if i < 5:
        lang = "zh" if i < 3 else "en"
        review = rng.choice([r for r in reviews if r["lang"] == lang and r["rating"] != 3])
        if lang == "zh":
            return "判断这条评论是好评还是差评", review["text"], review["label"]
        label = "positive" if review["rating"] >= 4 else "negative"
        return "Classify this customer review as positive or negative.", review["text"], label
    if i < 7:
        intent, messages = rng.choice(INTENTS)
        labels = "、".join(name for name, _ in INTENTS)
        return f"将下面的客户咨询归入以下类别之一：{labels}", rng.choice(messages), intent
    p = rng.choice(products)
    names = ", ".join(c["en"] for c in CATEGORIES.values())
    return f"Which category does this product belong to? Answer with one of: {names}.", p["full_name_en"], \
        CATEGORIES[p["category"]]["en"]


def _generation(i: int, products: list[dict[str, Any]], _: list[dict[str, Any]], rng: Rng) -> Task:
    p = products[(i * 7 + 3) % len(products)]
    kind, spec = KINDS[p["type"]], p["specs"][0]
    aspect_zh, aspect_en = rng.choice(kind["aspects"])
    if i % 2 == 0:
        return (f"为 {p['full_name_zh']} 写一段不超过 60 字的商品推荐语，包含价格和保修信息。", "",
                f"{p['name']}（¥{p['price']}）{spec['name_zh']}达 {spec['text_zh']}，{aspect_zh}出色，"
                f"享 {p['warranty_months']} 个月保修和 {p['return_days']} 天无理由退货，放心入手！")
    return (f"Write a two-sentence product blurb for the {p['full_name_en']} that mentions price and warranty.", "",
            f"The {p['name']} (¥{p['price']}) features a {spec['name_en']} of {spec['text_en']} and standout "
            f"{aspect_en}. It comes with a {p['warranty_months']}-month warranty and {p['return_days']}-day returns.")


def _summarization(i: int, products: list[dict[str, Any]], _: list[dict[str, Any]], rng: Rng) -> Task:
    p = products[(i * 11 + 5) % len(products)]
    if i % 2 == 0:
        specs = "；".join(f"{s['name_zh']} {s['text_zh']}" for s in p["specs"])
        text = (f"{p['name']} 是一款{p['type_zh']}，属于{p['category_zh']}品类。主要参数：{specs}。"
                f"本品提供 {p['warranty_months']} 个月保修，签收后 {p['return_days']} 天内可无理由退货。"
                f"{KINDS[p['type']]['care'][0]}")
        return ("将下面的商品介绍总结为一句话", text,
                f"{p['name']} {p['type_zh']}：{specs}，保修 {p['warranty_months']} 个月，"
                f"{p['return_days']} 天无理由退货。")
    specs = "; ".join(f"{s['name_en']} {s['text_en']}" for s in p["specs"])
    text = (f"The {p['name']} is a {p['type_en']} in our {p['category']} range. Key specs: {specs}. It carries a "
            f"{p['warranty_months']}-month warranty, and unused items can be returned within {p['return_days']} days. "
            f"{KINDS[p['type']]['care'][1]}")
    return ("Summarise this product description in one sentence.", text,
            f"The {p['name']} {p['type_en']} ({specs}) has a {p['warranty_months']}-month warranty and "
            f"{p['return_days']}-day returns.")


def _qa(i: int, products: list[dict[str, Any]], _: list[dict[str, Any]], rng: Rng) -> Task:
    p = products[(i * 13 + 1) % len(products)]
    spec = rng.choice(p["specs"])
    questions: list[Task] = [
        (f"{p['name']} 的保修期是多久？", "",
         f"{p['name']} 的保修期为 {p['warranty_months']} 个月，自签收之日起计算。"),
        (f"How much does the {p['name']} cost?", "", f"The {p['name']} costs ¥{p['price']}."),
        (f"{p['name']} 支持几天无理由退货？", "", f"{p['name']} 支持 {p['return_days']} 天无理由退货。"),
        (f"What is the {spec['name_en']} of the {p['name']}?", "",
         f"The {p['name']} has a {spec['name_en']} of {spec['text_en']}."),
        ("订单满多少钱包邮？不满要付多少运费？", "",
         f"订单满 ¥{FREE_SHIPPING_OVER} 包邮，不满 ¥{FREE_SHIPPING_OVER} 收取 ¥{SHIPPING_FEE} 运费。"),
        ("How much extra is express delivery, and is it waived for free-shipping orders?", "",
         f"Express delivery costs an extra ¥{EXPRESS_FEE} and is charged even when the order ships free."),
        (f"{p['name']} {KINDS[p['type']]['trouble'][0]}，怎么办？", "", KINDS[p["type"]]["trouble"][1]),
        (f"How do I set up the {p['name']}?", "", KINDS[p["type"]]["setup"][1]),
    ]
    return questions[i]


def _rewrite(i: int, products: list[dict[str, Any]], _: list[dict[str, Any]], rng: Rng) -> Task:
    p = products[(i * 5 + 2) % len(products)]
    w, d = p["warranty_months"], p["return_days"]
    variants: list[Task] = [
        ("把下面这句客服回复改写得更礼貌、更专业", f"{p['name']} 超过 {d} 天了，退不了。",
         f"非常抱歉，{p['name']} 的无理由退货期限为 {d} 天，目前已超过期限，暂时无法办理无理由退货；"
         f"如遇质量问题，您可以在 {w} 个月保修期内申请免费维修。"),
        ("把下面这句客服回复改写得更礼貌、更专业", f"摔坏的不保修，要修自己掏钱，{p['name']} 也一样。",
         f"很抱歉，摔落造成的损坏不在 {p['name']} 的 {w} 个月保修范围内。我们可以为您付费维修，"
         f"收取人工费 ¥{REPAIR_LABOUR_FEE} 加实际零件费用，感谢您的理解。"),
        ("Rewrite this support reply so it is polite and professional.", f"No refund. {p['name']} is past {d} days.",
         f"We're sorry, but the {d}-day return window for the {p['name']} has passed, so we can't accept a return "
         f"without a reason. If it develops a fault, it is covered by its {w}-month warranty."),
        ("Rewrite this support reply so it is polite and professional.", "You pay the return shipping. Ten yuan.",
         f"For returns without a reason, the return shipping of ¥{RETURN_SHIPPING_FEE} is deducted from your refund. "
         "Thank you for understanding."),
        ("将下面的英文翻译成中文", f"The {p['name']} has a {w}-month warranty from delivery.",
         f"{p['name']} 提供 {w} 个月保修，自签收之日起计算。"),
        ("将下面的英文翻译成中文", f"Unused items can be returned within {d} days of delivery.",
         f"未使用的商品可在签收后 {d} 天内退货。"),
        ("Translate into English.", f"{p['name']} 支持 {d} 天无理由退货。",
         f"The {p['name']} can be returned within {d} days for any reason."),
        ("Translate into English.", f"订单满 ¥{FREE_SHIPPING_OVER} 包邮。",
         f"Orders of ¥{FREE_SHIPPING_OVER} or more ship free."),
    ]
    return variants[i]


def _refund(p: dict[str, Any], n: int, k: int, defect: bool, zh: bool) -> Task:
    paid = p["price"] * k
    refund = paid if defect else paid - RETURN_SHIPPING_FEE
    if zh:
        why = "因质量问题" if defect else "无理由"
        fee = "质量问题由本店承担运费，全额退款" if defect else f"无理由退货扣除退回运费 ¥{RETURN_SHIPPING_FEE}"
        return (f"顾客买了 {n} 件 {p['name']}，{why}退回其中 {k} 件，应退款多少？请写出计算过程。", "",
                f"{p['name']} 单价 ¥{p['price']}，退回 {k} 件共 ¥{paid}；{fee}；应退款 ¥{refund}。")
    why = "because it is defective" if defect else "without a reason"
    fee = "defective returns are refunded in full" if defect else \
        f"returns without a reason lose ¥{RETURN_SHIPPING_FEE} return shipping"
    return (f"A customer bought {n} × {p['name']} and returns {k} {why}. How much is refunded? Show your working.",
            "", f"The {p['name']} costs ¥{p['price']}, so {k} returned = ¥{paid}; {fee}; refund = ¥{refund}.")


def _reasoning(i: int, products: list[dict[str, Any]], _: list[dict[str, Any]], rng: Rng) -> Task:
    p, q = products[(i * 17 + 4) % len(products)], products[(i * 3 + 20) % len(products)]
    if i == 5:
        p, q = sorted(products, key=lambda x: x["price"])[:2]
    if i < 4:
        n = rng.randint(1, 3)
        return _refund(p, n, rng.randint(1, n), i % 2 == 1, i < 2)
    if i < 6:
        total = p["price"] + q["price"]
        fee = 0 if total >= FREE_SHIPPING_OVER else SHIPPING_FEE
        if i == 4:
            return (f"购物车里有 {p['name']} 和 {q['name']} 各一件，选择加急配送，一共要付多少钱？", "",
                    f"{p['name']} ¥{p['price']} + {q['name']} ¥{q['price']} = ¥{total}；标准运费 ¥{fee}；"
                    f"加急费 ¥{EXPRESS_FEE}；合计 ¥{total + fee + EXPRESS_FEE}。")
        return (f"I buy one {p['name']} and one {q['name']} with standard delivery. What do I pay in total?", "",
                f"{p['name']} ¥{p['price']} + {q['name']} ¥{q['price']} = ¥{total}; shipping ¥{fee}; "
                f"total ¥{total + fee}.")
    day = random_date(rng)
    if i == 6:
        later = day + dt.timedelta(days=p["return_days"] + rng.choice([-2, 3]))
        days = (later - day).days
        verdict = "可以无理由退货" if days <= p["return_days"] else "已超过期限，不能无理由退货"
        return (f"{p['name']} 于 {zh_date(day)} 签收，顾客在 {zh_date(later)} 申请无理由退货，可以吗？", "",
                f"{p['name']} 的无理由退货期限为 {p['return_days']} 天，签收至申请共 {days} 天，{verdict}。")
    later = day + dt.timedelta(days=30 * p["warranty_months"] + rng.choice([-40, 40]))
    end = add_months(day, p["warranty_months"])
    verdict = "the repair is free" if later <= end else "it has expired and the repair is paid"
    return (f"A {p['name']} delivered on {en_date(day)} breaks on {en_date(later)}. Is the repair free?", "",
            f"The {p['name']} has a {p['warranty_months']}-month warranty, which runs until {en_date(end)}; "
            f"so {verdict}.")


MAKERS: list[tuple[str, Maker]] = [("classification", _classification), ("generation", _generation),
                                   ("summarization", _summarization), ("qa", _qa), ("rewrite", _rewrite),
                                   ("reasoning", _reasoning)]


def seed_tasks(products: list[dict[str, Any]], reviews: list[dict[str, Any]], rng: Rng) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for task_type, make in MAKERS:
        for i in range(PER_TYPE):
            instruction, text, output = make(i, products, reviews, rng)
            tasks.append({"id": f"seed_{len(tasks) + 1:03d}", "task_type": task_type, "instruction": instruction,
                          "input": text, "output": output, "is_classification": task_type == "classification"})
    return tasks
