#!/usr/bin/env python3
"""Rebuild sample_data/: labelled game sound effects from Debian's free-game data packages.

    python scripts/build_sample_data.py [--debs DIR] [--out sample_data]

Downloads the .deb files with `apt-get download` (no install, no root needed for that step),
unpacks them with `dpkg-deb -x`, picks the files listed in SOURCES below, converts each to mono
OGG Vorbis at <= 44.1 kHz trimmed to <= 10 s, and writes manifest.csv
(file,label,source,licence,author) plus LICENSES.md.

Labels come from each file's name and its role in its game (e.g. Wesnoth's `sword-1.ogg` is a
melee weapon hit), one category per rule below; files whose name does not say what they are were
left out. Silent or near-silent files are skipped.
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

MAX_SECONDS = 10.0
MAX_RATE = 44100

# package -> (path prefix inside the package, licence, author/copyright as the package states it)
PACKAGES = {
    "hedgewars-data": ("usr/share/games/hedgewars/Data/Sounds/", "GFDL-1.3", "Andrey Korotaev / Hedgewars Project"),
    "wesnoth-1.16-data": ("usr/share/games/wesnoth/1.16/", "GPL-2+", "The Battle for Wesnoth project (David White et al.)"),
    "supertux-data": ("usr/share/games/supertux2/sounds/", "GPL-3+", "SuperTux Devel Team"),
    "chromium-bsu-data": ("usr/share/games/chromium-bsu/wav/", "Expat", "Brian Redfern"),
    "marsshooter-data": ("usr/share/games/marsshooter/audio/", "CC-BY-3.0", "Mike Koenig; Simon Schneegans, Felix Lauer (M.A.R.S.)"),
    "lincity-ng-data": ("usr/share/games/lincity-ng/sounds/", "GPL-2+", "LinCity-NG contributors (I J Peters et al.)"),
    "pingus-data": ("usr/share/games/pingus/data/sounds/", "GPL-2+", "Ingo Ruhnke and the Pingus contributors"),
    "frozen-bubble-data": ("usr/share/games/frozen-bubble/snd/", "GPL-2", "The Frozen Bubble team (Karthik Thakore et al.)"),
    # blobwars states a licence per sound file: only files listed in LICENCE_OVERRIDES are used.
    "blobwars-data": ("usr/share/games/blobwars/sound/", "GPL-2+", "see LICENCE_OVERRIDES"),
}
# Exceptions to a package's licence, as its debian/copyright states them.
LICENCE_OVERRIDES = {
    ("hedgewars-data", "Droplet*"): ("CC-BY-SA-3.0", "saugox (freesound.org/people/saugox/sounds/37548/)"),
    ("marsshooter-data", "*toon/*"): ("public-domain", "public domain (M.A.R.S. credits.txt)"),
    ("blobwars-data", "machinegun"): ("GPL-2+", "Alientrap, Lee Vermeulen (Nexuiz)"),
    ("blobwars-data", "plasma"): ("GPL-2+", "Alientrap, Lee Vermeulen (Nexuiz)"),
    ("blobwars-data", "pistol"): ("GPL-2+", "id Software Inc., OpenArena Team"),
}

# (label, package, glob patterns relative to the package prefix)
SOURCES: list[tuple[str, str, list[str]]] = [
    ("explosion", "hedgewars-data", ["explosion.ogg", "grenadeimpact.ogg", "mortar.ogg", "airmine_impact.ogg"]),
    ("explosion", "wesnoth-1.16-data", ["explosion.ogg"]),
    ("explosion", "supertux-data", ["explosion.wav"]),
    ("explosion", "chromium-bsu-data", ["boom.wav", "exploStd.wav", "exploPop.wav", "exploBig.wav"]),
    ("explosion", "marsshooter-data", ["*/shipExplode.wav", "*/planetExplode.wav", "*/ballExplode.wav"]),
    ("explosion", "lincity-ng-data", ["RocketExplosion1.wav"]),
    ("gunshot", "hedgewars-data", ["shotgunfire.ogg", "gun.ogg", "minigun.ogg"]),
    ("gunshot", "blobwars-data", ["machinegun", "pistol"]),
    ("gunshot", "wesnoth-1.16-data", ["gunshot.wav", "thunderstick.ogg", "dragonstick.ogg"]),
    ("gunshot", "marsshooter-data", ["*/sniper.wav"]),
    ("laser", "hedgewars-data", ["sinegun.ogg", "portalshot.ogg", "ice_beam.ogg", "lasersight.ogg", "portalopen.ogg", "ufo.ogg"]),
    ("laser", "marsshooter-data", ["*/laser.wav", "*/laserCollide.wav"]),
    ("laser", "wesnoth-1.16-data", ["magicmissile.wav"]),
    ("laser", "blobwars-data", ["plasma"]),
    ("voice", "hedgewars-data", [
        "voices/Default/Amazing.ogg", "voices/Default/Brilliant.ogg", "voices/Default/Excellent.ogg", "voices/Default/Hello.ogg",
        "voices/Default/Incoming.ogg", "voices/Default/Takecover.ogg", "voices/Default/Victory.ogg", "voices/Default/Watchthis.ogg",
        "voices/Default/Revenge.ogg", "voices/Default/Yessir.ogg", "voices/Default/Justyouwait.ogg", "voices/Default/Reinforcements.ogg",
        "voices/British/Hello.ogg", "voices/British/Incoming.ogg", "voices/Pirate/Hello.ogg", "voices/Pirate/Incoming.ogg",
    ]),
    ("voice", "marsshooter-data", ["*/niceOne.wav", "*/thatWasGreat.wav", "*/wellDone.wav", "*/impressive.wav", "*/youSuck.wav"]),
    ("pain_grunt", "hedgewars-data", ["voices/Default/Ow1.ogg", "voices/Default/Ow2.ogg", "voices/Default/Ow3.ogg", "voices/Default/Ooff1.ogg", "voices/Default/Ooff2.ogg", "voices/Default/Ooff3.ogg"]),
    ("pain_grunt", "wesnoth-1.16-data", ["human-hit-1.ogg", "human-hit-2.ogg", "human-hit-3.ogg", "human-hit-4.ogg", "human-female-hit-1.ogg", "human-female-hit-2.ogg", "dwarf-hit-1.ogg", "dwarf-hit-2.ogg", "elf-hit-1.ogg", "elf-hit-2.ogg"]),
    ("creature", "wesnoth-1.16-data", [
        "wolf-growl-1.ogg", "wolf-growl-2.ogg", "wolf-growl-3.ogg", "ogre-hit-1.ogg", "ogre-die-1.ogg", "troll-hit-1.ogg",
        "troll-die-1.ogg", "yeti-hit.ogg", "drake-die.ogg", "gryphon-shriek-1.ogg", "gryphon-shriek-2.ogg", "lich-die.ogg",
        "zombie-hit-1.ogg", "tusker-hit.ogg",
    ]),
    ("creature", "supertux-data", ["yeti_roar.wav", "yeti_gna.wav"]),
    ("melee_weapon", "wesnoth-1.16-data", ["sword-1.ogg", "axe.ogg", "mace.ogg", "club.ogg", "hatchet.wav", "spear.ogg", "flail.ogg", "knife.ogg", "dagger-swish.wav", "staff.ogg", "claws.ogg"]),
    ("melee_weapon", "hedgewars-data", ["baseballbat.ogg", "hammer.ogg", "firepunch_hit.ogg", "knife_impact.ogg"]),
    ("bow_arrow", "wesnoth-1.16-data", ["bow.ogg", "bow-miss.ogg", "bow-puny.ogg", "bow-puny-miss.ogg", "crossbow.ogg", "crossbow-miss.ogg", "crossbow-fire.ogg", "bow-puny-fire.ogg", "sling.ogg", "throwing-knife.ogg"]),
    ("magic", "wesnoth-1.16-data", [
        "magic-holy-1.ogg", "magic-holy-2.ogg", "magic-holy-3.ogg", "magic-dark.ogg", "magic-dark-big.ogg", "magic-faeriefire.ogg",
        "magic-thorns-1.ogg", "magic-thorns-2.ogg", "magic-missile-1.ogg", "magic-missile-2.ogg", "magic-missile-3.ogg", "heal.wav",
        "lightning.ogg", "petrified.ogg",
    ]),
    ("magic", "hedgewars-data", ["warp.ogg", "invulnerable.ogg"]),
    ("magic", "supertux-data", ["invincible_start.ogg"]),  # warp.wav: the same recording as hedgewars warp.ogg
    ("jump_bounce", "supertux-data", ["jump.wav", "bigjump.wav", "trampoline.wav", "hop.ogg", "flip.wav", "iceblock_bump.wav"]),
    ("jump_bounce", "frozen-bubble-data", ["rebound.ogg", "launch.ogg"]),
    ("pickup", "supertux-data", ["coin.wav", "coin2.ogg", "lifeup.wav", "upgrade.wav", "grow.wav", "fire-flower.wav"]),
    ("pickup", "hedgewars-data", ["CollectCrate.ogg"]),
    ("pickup", "chromium-bsu-data", ["power.wav", "life_add.wav"]),
    ("pickup", "marsshooter-data", ["*/fuel.wav", "*/score.wav"]),
    ("pickup", "wesnoth-1.16-data", ["gold.ogg"]),
    ("water", "hedgewars-data", ["splash.ogg", "Droplet1.ogg", "Droplet2.ogg", "Droplet3.ogg", "planewater.ogg", "beewater.ogg", "rubberduck_water.ogg"]),
    ("water", "supertux-data", ["splash.wav", "splash.ogg", "waterfall.wav"]),
    ("water", "pingus-data", ["splash.wav"]),
    ("water", "wesnoth-1.16-data", ["water-blast.wav"]),
    ("ui_click", "wesnoth-1.16-data", ["button.wav", "checkbox.wav", "slider.wav", "contract.wav"]),  # select = button, expand = contract (dupes)
    ("ui_click", "marsshooter-data", ["interface/click.wav", "interface/tab.wav", "interface/check.wav"]),
    ("ui_click", "frozen-bubble-data", ["menu_selected.ogg", "cancel.ogg"]),  # menu_change.ogg = rebound.ogg (dupes)
    ("ui_click", "lincity-ng-data", ["Click.wav", "WindowOpen.wav", "WindowClose.wav"]),
    ("vehicle_engine", "lincity-ng-data", ["RailTrain1.wav", "RailTrain2.wav", "RailTrain3.wav", "TraficHigh1.wav", "TraficHigh2.wav", "TraficHigh3.wav", "Rocket1.wav", "Rocket2.wav", "RocketTakeoff1.wav"]),
    ("vehicle_engine", "hedgewars-data", ["plane.ogg", "rcplane.ogg"]),
    ("fire", "hedgewars-data", ["flamethrower.ogg", "blowtorch.ogg", "molotov.ogg"]),
    ("fire", "wesnoth-1.16-data", ["fire.wav", "flame-big.ogg", "torch.ogg", "melee-fire.ogg"]),
    ("fire", "supertux-data", ["fire.ogg", "flame.wav"]),
    ("fire", "lincity-ng-data", ["Fire1.wav", "Fire2.wav", "Fire3.wav"]),
    ("ambience_nature", "wesnoth-1.16-data", ["ambient/birds1.ogg", "ambient/birds2.ogg", "ambient/birds3.ogg", "ambient/morning.ogg", "ambient/night.ogg"]),
    ("ambience_nature", "lincity-ng-data", ["ParklandLake1.wav", "ParklandLake2.wav", "Green1.wav", "Green2.wav", "Green3.wav", "Farm1.wav"]),
    ("ambience_nature", "supertux-data", ["rain.wav"]),
]


def fetch(packages: list[str], debs: Path, root: Path) -> None:
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        subprocess.run(["apt-get", "download", *missing], cwd=debs, check=True)
    for p in packages:
        deb = sorted(debs.glob(f"{p}_*.deb"))[-1]
        target = root / p
        if not target.exists():
            subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)


def licence_for(package: str, rel: str) -> tuple[str, str]:
    for (pkg, pattern), value in LICENCE_OVERRIDES.items():
        if pkg == package and fnmatch.fnmatch(rel, pattern):
            return value
    _, licence, author = PACKAGES[package]
    return licence, author


def convert(src: Path, dest: Path) -> float | None:
    """Mono OGG Vorbis, <= 44.1 kHz, <= 10 s; None when the file is (near) silent."""
    data, rate = sf.read(str(src), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)[: int(MAX_SECONDS * rate)]
    if mono.size == 0 or np.max(np.abs(mono)) < 1e-3:
        return None
    if rate > MAX_RATE:
        import librosa

        mono = librosa.resample(mono, orig_sr=rate, target_sr=MAX_RATE)
        rate = MAX_RATE
    # Fade the last 20 ms so trimmed loops do not end in a click.
    fade = min(len(mono), int(0.02 * rate))
    mono[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    sf.write(str(dest), mono, rate, format="OGG", subtype="VORBIS")
    return len(mono) / rate


def build(out: Path, debs: Path, work: Path) -> list[dict]:
    fetch(sorted({pkg for _, pkg, _ in SOURCES}), debs, work)
    rows = []
    used: set[str] = set()
    for label, package, patterns in SOURCES:
        prefix = work / package / PACKAGES[package][0]
        for pattern in patterns:
            matches = sorted(prefix.glob(pattern)) or sorted(prefix.glob("**/" + pattern))
            if not matches:
                print(f"warning: {package}:{pattern} not found", file=sys.stderr)
                continue
            src = matches[0]
            rel = src.relative_to(prefix).as_posix()
            base = f"{label}/{package.split('-')[0]}_{src.stem.replace(' ', '_').replace('/', '_')}"
            name, n = f"{base}.ogg", 2
            while name in used:
                name, n = f"{base}_{n}.ogg", n + 1
            (out / label).mkdir(parents=True, exist_ok=True)
            seconds = convert(src, out / name)
            if seconds is None:
                print(f"skipped (silent): {package}:{rel}", file=sys.stderr)
                continue
            used.add(name)
            licence, author = licence_for(package, rel)
            rows.append({"file": name, "label": label, "source": f"debian:{package}:{PACKAGES[package][0]}{rel}", "licence": licence, "author": author})
    return rows


LICENCE_TEXT = {
    "GPL-2": "GNU General Public License v2 (https://www.gnu.org/licenses/old-licenses/gpl-2.0.html)",
    "GPL-2+": "GNU General Public License v2 or later (https://www.gnu.org/licenses/old-licenses/gpl-2.0.html)",
    "GPL-3+": "GNU General Public License v3 or later (https://www.gnu.org/licenses/gpl-3.0.html)",
    "GFDL-1.3": "GNU Free Documentation License 1.3 (https://www.gnu.org/licenses/fdl-1.3.html)",
    "CC-BY-3.0": "Creative Commons Attribution 3.0 (https://creativecommons.org/licenses/by/3.0/)",
    "CC-BY-SA-3.0": "Creative Commons Attribution-ShareAlike 3.0 (https://creativecommons.org/licenses/by-sa/3.0/)",
    "Expat": "MIT/Expat licence (https://opensource.org/license/mit)",
    "public-domain": "Public domain",
}


def write_outputs(out: Path, rows: list[dict]) -> None:
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["file", "label", "source", "licence", "author"])
        w.writeheader()
        w.writerows(rows)
    lines = [
        "# Licences of the bundled sound effects",
        "",
        "Every file in this folder was taken from a free game's data package in Debian, converted to",
        "mono OGG Vorbis and trimmed to at most 10 s by `scripts/build_sample_data.py`.",
        "`manifest.csv` lists, for each file, its origin (`debian:<package>:<path>`), licence and author.",
        "The licences below allow redistribution; each requires the attribution given here, and the",
        "copyleft ones (GPL, GFDL, CC BY-SA) require that modified versions carry the same licence.",
        "The full licence texts are in each package's `/usr/share/doc/<package>/copyright`.",
        "",
        "| package | licence | author | files |",
        "|---|---|---|---|",
    ]
    by_pkg: dict[tuple[str, str, str], int] = {}
    for r in rows:
        pkg = r["source"].split(":")[1]
        key = (pkg, r["licence"], r["author"])
        by_pkg[key] = by_pkg.get(key, 0) + 1
    for (pkg, lic, author), n in sorted(by_pkg.items()):
        lines.append(f"| {pkg} | {lic} | {author} | {n} |")
    lines += ["", "## Licence texts", ""]
    for lic in sorted({r["licence"] for r in rows}):
        lines.append(f"- **{lic}**: {LICENCE_TEXT.get(lic, lic)}")
    (out / "LICENSES.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "sample_data"))
    ap.add_argument("--debs", default=str(Path(tempfile.gettempdir()) / "soundalike-debs"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*/*.ogg"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="soundalike-build-") as tmp:
        rows = build(out, Path(args.debs), Path(tmp))
    write_outputs(out, rows)
    labels: dict[str, int] = {}
    for r in rows:
        labels[r["label"]] = labels.get(r["label"], 0) + 1
    print(f"{len(rows)} files in {len(labels)} categories: {labels}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
