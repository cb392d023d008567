/** @type {import('tailwindcss').Config} */
export default {
  content: ['./index.html', './src/**/*.{ts,tsx}'],
  theme: {
    extend: {
      colors: {
        brand: {
          50: '#eef3fb',
          100: '#d6e1f4',
          200: '#adc3e8',
          300: '#7d9fd8',
          400: '#4f78c2',
          500: '#315aa6',
          600: '#234687',
          700: '#1c386c',
          800: '#152a52',
          900: '#0f1e3b',
          950: '#0a1428',
        },
        accent: {
          400: '#f2b84b',
          500: '#e39e21',
          600: '#c2810f',
        },
      },
      fontFamily: {
        sans: [
          'Inter',
          'ui-sans-serif',
          'system-ui',
          '-apple-system',
          'Segoe UI',
          'Roboto',
          'Helvetica Neue',
          'Arial',
          'sans-serif',
        ],
      },
    },
  },
  plugins: [],
};
