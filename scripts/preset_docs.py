"""The demo shop's documents: catalogue, manuals, policies, FAQ and reviews, all from the one product list."""

from typing import Any

from preset_chats import support_chats
from preset_policies import faq_en, faq_zh, policies_en, policies_zh
from preset_text import en_date, random_date, review_text, zh_date
from preset_vocab import CATEGORIES, EN_NAMES, SHOP_EN, SHOP_ZH, TYPES, ZH_NAMES, Rng

KINDS = {kind["key"]: kind for kind in TYPES}
RATING_WEIGHTS = [(5, 40), (4, 25), (3, 10), (2, 12), (1, 13)]
ZH_STEP3 = ["如有疑问，可在 App 或官网联系在线客服。", "遇到问题请先查看下方故障排查。", "完成后即可正常使用。"]
ZH_CARE = ["请远离明火和高温环境。", "请放在儿童够不到的地方。", "长期不用请断电存放。", "请避免剧烈摔落。"]


def catalog(products: list[dict[str, Any]]) -> str:
    lines = [f"# {SHOP_ZH}商品目录 / Product catalogue of {SHOP_EN}", "",
             "价格单位为人民币，保修期自签收之日起计算。Prices are in CNY; warranty starts on the delivery date.", ""]
    for key, category in CATEGORIES.items():
        lines += [f"## {category['zh']} / {category['en'].capitalize()}", "",
                  "| 编号 ID | 型号 Model | 品类 Type | 售价 Price | 保修 Warranty | 退货 Returns |",
                  "|---|---|---|---|---|---|"]
        for p in (p for p in products if p["category"] == key):
            lines.append(f"| {p['id']} | {p['name']} | {p['type_zh']} / {p['type_en']} | ¥{p['price']} | "
                         f"{p['warranty_months']} 个月 / {p['warranty_months']} months | "
                         f"{p['return_days']} 天无理由退货 / {p['return_days']}-day returns |")
        lines.append("")
    return "\n".join(lines)


def manual_zh(p: dict[str, Any], rng: Rng) -> str:
    kind = KINDS[p["type"]]
    intro = rng.choice(["感谢您选购", "欢迎使用", "感谢您在演示商城购买"])
    lines = [f"## {p['full_name_zh']} 使用说明书", "",
             f"{intro} {p['name']}。{p['name']} 售价 ¥{p['price']}，享受 {p['warranty_months']} 个月保修和 "
             f"{p['return_days']} 天无理由退货。使用前请仔细阅读本说明书并妥善保管。", "",
             "### 规格参数", ""]
    lines += [f"- {s['name_zh']}：{s['text_zh']}" for s in p["specs"]]
    lines += ["", "### 快速上手", "", "1. 开箱后核对配件：商品本体、说明书、保修卡" + ("、USB-C 充电线。" if
              p["category"] == "electronics" and p["type"] != "cable" else "。"), f"2. {kind['setup'][0]}",
              f"3. {rng.choice(ZH_STEP3)}",
              "", "### 日常保养", "", f"- {kind['care'][0]}",
              f"- {rng.choice(ZH_CARE)}",
              "", "### 故障排查", "", f"- 问题：{kind['trouble'][0]}。", f"  处理：{kind['trouble'][1]}",
              "", "### 售后说明", "",
              f"{p['name']} 的保修期为 {p['warranty_months']} 个月，自签收之日起计算。"
              f"签收后 {p['return_days']} 天内，商品未使用且包装完好可申请无理由退货；"
              "人为损坏、进水和私自拆修不在保修范围内。", ""]
    return "\n".join(lines)


def manual_en(p: dict[str, Any], rng: Rng) -> str:
    kind = KINDS[p["type"]]
    intro = rng.choice(["Thank you for choosing", "Welcome to your new", "Thanks for buying"])
    lines = [f"## {p['full_name_en']}: user manual", "",
             f"{intro} the {p['name']}. The {p['name']} sells for ¥{p['price']} at {SHOP_EN} and comes with a "
             f"{p['warranty_months']}-month warranty and a {p['return_days']}-day return window.", "",
             "### Specifications", ""]
    lines += [f"- {s['name_en'].capitalize()}: {s['text_en']}" for s in p["specs"]]
    lines += ["", "### Getting started", "", "1. Check the box: the product, this manual and the warranty card.",
              f"2. {kind['setup'][1]}",
              f"3. {rng.choice(['Questions? Chat with support in the app.', 'See troubleshooting below if stuck.'])}",
              "", "### Care", "", f"- {kind['care'][1]}",
              f"- {rng.choice(['Keep away from open flames.', 'Keep out of reach of children.', 'Avoid drops.'])}",
              "", "### Troubleshooting", "", f"- Problem: {kind['trouble'][2]}.",
              f"  Fix: {kind['trouble'][3][0].upper()}{kind['trouble'][3][1:]}", "", "### After-sales", "",
              f"The {p['name']} has a {p['warranty_months']}-month warranty from the delivery date. Unused items in "
              f"their original packaging can be returned within {p['return_days']} days of delivery for any reason. "
              "Damage from drops, water or unauthorised repair is not covered.", ""]
    return "\n".join(lines)


def make_reviews(products: list[dict[str, Any]], rng: Rng) -> list[dict[str, Any]]:
    reviews: list[dict[str, Any]] = []
    ratings, weights = zip(*RATING_WEIGHTS, strict=True)
    for p in products:
        for lang, count in (("zh", 8), ("en", 5)):
            for _ in range(count):
                rating = rng.choices(ratings, weights)[0]
                user = rng.choice(ZH_NAMES if lang == "zh" else EN_NAMES)
                reviews.append({"id": f"R{len(reviews) + 1:04d}", "product": p["name"], "lang": lang,
                                "rating": rating, "user": user, "date": random_date(rng),
                                "text": review_text(p, KINDS[p["type"]], rating, lang, rng),
                                "label": "好评" if rating >= 4 else "差评" if rating <= 2 else "中评"})
    return reviews


def reviews_doc(reviews: list[dict[str, Any]], lang: str) -> str:
    if lang == "zh":
        lines = [f"{SHOP_ZH}用户评价精选（评分 1-5 星）", ""]
        for r in (r for r in reviews if r["lang"] == "zh"):
            lines += [f"[{r['id']}] 商品：{r['product']} | 评分：{r['rating']}/5 | 用户：{r['user']} | "
                      f"{zh_date(r['date'])}", r["text"], ""]
    else:
        lines = [f"Customer reviews at {SHOP_EN} (1-5 stars)", ""]
        for r in (r for r in reviews if r["lang"] == "en"):
            lines += [f"[{r['id']}] Product: {r['product']} | Rating: {r['rating']}/5 | By {r['user']} | "
                      f"{en_date(r['date'])}", r["text"], ""]
    return "\n".join(lines)


def write_docs(products: list[dict[str, Any]], rng: Rng) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Every document as {relative path: text}, plus the reviews (seed tasks classify them)."""
    files = {"docs/catalog.md": catalog(products)}
    for key, category in CATEGORIES.items():
        mine = [p for p in products if p["category"] == key]
        files[f"docs/manuals_{key}_zh.md"] = "\n".join(
            [f"# {SHOP_ZH} · {category['zh']}类商品说明书", ""] + [manual_zh(p, rng) for p in mine])
        files[f"docs/manuals_{key}_en.md"] = "\n".join(
            [f"# {SHOP_EN.capitalize()}: {category['en']} manuals", ""] + [manual_en(p, rng) for p in mine])
    files["docs/policies_zh.md"] = policies_zh()
    files["docs/policies_en.txt"] = policies_en()
    files["docs/faq_zh.md"] = faq_zh(products, rng)
    files["docs/faq_en.md"] = faq_en(products, rng)
    reviews = make_reviews(products, rng)
    files["docs/reviews_zh.txt"] = reviews_doc(reviews, "zh")
    files["docs/reviews_en.txt"] = reviews_doc(reviews, "en")
    files["docs/support_chats.md"] = support_chats(products, rng)
    return files, reviews
