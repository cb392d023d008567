import { useEffect, useRef } from 'react';
import type { VoiceCall, VoiceStats } from './call';
import {
  MOUTH_SHAPES,
  REST_MOUTH,
  blendMouth,
  mouthForLevel,
  mouthPath,
  smoothing,
} from './visemes';
import type { MouthShape } from './visemes';

const MOUTH_X = 100;
const MOUTH_Y = 131;

/**
 * Adam's built-in face: an SVG whose mouth follows the answer being heard.
 * Each animation frame asks the call's audio engine which position of
 * which answer the speakers play, and takes the mouth shape from that
 * answer's viseme timeline; an answer without visemes moves the jaw with
 * the output level instead. The shape is eased, and written straight to
 * the SVG (no React render per frame). The current mouth is published as
 * data-mouth on the svg and as stats.mouth.
 */
export function BuiltInAvatar({
  call,
  stats,
  label,
}: {
  call: VoiceCall | null;
  stats: VoiceStats | null;
  label: string;
}) {
  const svgRef = useRef<SVGSVGElement>(null);
  const mouthRef = useRef<SVGPathElement>(null);
  const leftEyeRef = useRef<SVGEllipseElement>(null);
  const rightEyeRef = useRef<SVGEllipseElement>(null);

  useEffect(() => {
    let raf = 0;
    let last = performance.now();
    let shape: MouthShape = REST_MOUTH;
    let shown = '';
    let nextBlink = last + 2500 + Math.random() * 3000;
    const reduced =
      typeof window.matchMedia === 'function' && window.matchMedia('(prefers-reduced-motion: reduce)').matches;

    const frame = (now: number) => {
      const dt = now - last;
      last = now;
      let target = REST_MOUTH;
      let mouth = 'rest';
      const engine = call?.audio;
      if (call && engine && engine.isPlaying()) {
        const pos = engine.position();
        if (pos) {
          const tl = call.timeline(pos.answer);
          if (tl && tl.size > 0) {
            const v = tl.at(pos.media * 1000);
            target = MOUTH_SHAPES[v];
            mouth = v;
          } else {
            target = mouthForLevel(engine.outputLevel());
            mouth = 'level';
          }
        }
      }
      shape = blendMouth(shape, target, smoothing(dt));
      mouthRef.current?.setAttribute('d', mouthPath(shape, MOUTH_X, MOUTH_Y));
      if (mouth !== shown) {
        shown = mouth;
        svgRef.current?.setAttribute('data-mouth', mouth);
        if (stats) stats.mouth = mouth;
      }
      if (!reduced) {
        const blinking = now >= nextBlink && now < nextBlink + 130;
        if (now >= nextBlink + 130) nextBlink = now + 2500 + Math.random() * 3500;
        const ry = blinking ? '0.8' : '5.5';
        leftEyeRef.current?.setAttribute('ry', ry);
        rightEyeRef.current?.setAttribute('ry', ry);
      }
      raf = requestAnimationFrame(frame);
    };
    raf = requestAnimationFrame(frame);
    return () => cancelAnimationFrame(raf);
  }, [call, stats]);

  return (
    <svg
      ref={svgRef}
      viewBox="0 0 200 220"
      role="img"
      aria-label={label}
      data-testid="voice-avatar"
      data-mouth="rest"
      className="mx-auto block h-auto w-full max-w-[16rem]"
    >
      <circle cx="100" cy="110" r="100" fill="#eef3fb" />
      {/* shoulders, shirt and tie */}
      <path d="M28 220 C34 178 62 166 100 166 C138 166 166 178 172 220 Z" fill="#152a52" />
      <path d="M84 166 L100 196 L116 166 Z" fill="#ffffff" />
      <path d="M96 172 L104 172 L107 210 L100 218 L93 210 Z" fill="#e39e21" />
      <rect x="88" y="146" width="24" height="24" rx="8" fill="#e2b08e" />
      {/* head */}
      <ellipse cx="48" cy="104" rx="8" ry="13" fill="#e8b895" />
      <ellipse cx="152" cy="104" rx="8" ry="13" fill="#e8b895" />
      <ellipse cx="100" cy="100" rx="52" ry="60" fill="#f1c7a5" />
      <path
        d="M48 96 C44 56 70 36 102 38 C134 38 158 58 152 96 C146 78 136 66 118 62 C100 70 72 70 56 74 C52 80 50 88 48 96 Z"
        fill="#3b2a20"
      />
      {/* brows, eyes, nose */}
      <path d="M66 84 Q78 78 90 84" stroke="#3b2a20" strokeWidth="3.5" fill="none" strokeLinecap="round" />
      <path d="M110 84 Q122 78 134 84" stroke="#3b2a20" strokeWidth="3.5" fill="none" strokeLinecap="round" />
      <ellipse ref={leftEyeRef} cx="78" cy="97" rx="5" ry="5.5" fill="#1f2937" />
      <ellipse ref={rightEyeRef} cx="122" cy="97" rx="5" ry="5.5" fill="#1f2937" />
      <path d="M100 100 Q96 114 94 116 Q100 120 106 116" stroke="#c98f6d" strokeWidth="2.5" fill="none" strokeLinecap="round" />
      {/* mouth: redrawn every frame */}
      <path
        ref={mouthRef}
        d={mouthPath(REST_MOUTH, MOUTH_X, MOUTH_Y)}
        fill="#5a1f25"
        stroke="#b5535a"
        strokeWidth="2.5"
        strokeLinejoin="round"
      />
    </svg>
  );
}
